use std::fmt;

/// A code list or reference file that cannot be used; names the file, the line and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CodeListError {
    /// File name (or path) of the list.
    pub file: String,
    /// 1-based line number, 0 when the problem concerns the whole file.
    pub line: u64,
    /// What is wrong and what would be right.
    pub reason: String,
}

impl CodeListError {
    pub(crate) fn new(file: &str, line: u64, reason: impl Into<String>) -> Self {
        CodeListError {
            file: file.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CodeListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        }
    }
}
