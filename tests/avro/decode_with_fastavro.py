"""Decodes ods messages (Confluent wire format) with fastavro and the schema files.

Usage: decode_with_fastavro.py SCHEMAS_DIR MESSAGE_FILE...
Prints one JSON object per message: {"schema_id": N, "record": {...}}.
Exits non-zero on any message it cannot decode, so a Rust test can rely on it.
"""
import base64
import datetime
import io
import json
import struct
import sys

import fastavro


def load_catalog(schemas_dir):
    with open(f"{schemas_dir}/catalog.json") as f:
        catalog = json.load(f)
    parsed = {}
    for entry in catalog["schemas"]:
        with open(f"{schemas_dir}/{entry['file']}") as f:
            parsed[entry["id"]] = fastavro.parse_schema(json.load(f))
    return parsed


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def main():
    schemas = load_catalog(sys.argv[1])
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            data = f.read()
        magic, schema_id = struct.unpack(">bI", data[:5])
        if magic != 0:
            sys.exit(f"{path}: magic byte {magic}")
        buffer = io.BytesIO(data[5:])
        record = fastavro.schemaless_reader(buffer, schemas[schema_id])
        if buffer.read():
            sys.exit(f"{path}: trailing bytes")
        print(json.dumps({"schema_id": schema_id, "record": plain(record)}, sort_keys=True))


if __name__ == "__main__":
    main()
