"""Runs every DDL statement and query text of ods-clickhouse through a current ClickHouse engine
(chdb, the embedded ClickHouse from PyPI), and checks that the columns the Rust row structs write
have exactly the types of the created tables (RowBinary has no type information).

Usage: python3 chdb_check.py CATALOG.json   (written by tests/sql_check.rs)
Prints one line per statement and exits non-zero when any fails.
"""

import json
import re
import sys
import tempfile

from chdb import session


def main(path):
    with open(path, encoding="utf-8") as f:
        catalog = json.load(f)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        sess = session.Session(tmp)
        version = sess.query("SELECT version()", "CSV").data().strip().strip('"')
        print(f"chdb (ClickHouse {version})")

        def run(label, sql):
            try:
                sess.query(sql, "CSV")
                print(f"ok   {label}")
            except Exception as e:  # noqa: BLE001 - report every failure, keep going
                failures.append(label)
                print(f"FAIL {label}: {e}\n     {sql}")

        for i, sql in enumerate(catalog["ddl"]):
            run(f"ddl {i}: {sql.splitlines()[0]}", sql)
        for i, sql in enumerate(catalog["ddl"]):
            run(f"ddl {i} again (idempotent)", sql)
        db = catalog["database"]
        for table, column, expected in catalog["columns"]:
            out = sess.query(
                f"SELECT type FROM system.columns WHERE database = '{db}' "
                f"AND table = '{table}' AND name = '{column}'",
                "CSV",
            ).data().strip().strip('"')
            actual = re.sub(r"^LowCardinality\((.*)\)$", r"\1", out)
            label = f"column {table}.{column} {expected}"
            if actual == expected:
                print(f"ok   {label}")
            else:
                failures.append(label)
                print(f"FAIL {label}: the table has '{out}'")
        for name, sql in catalog["queries"]:
            run(f"query {name}", sql)
        sess.close()
    total = len(catalog["ddl"]) * 2 + len(catalog["columns"]) + len(catalog["queries"])
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
