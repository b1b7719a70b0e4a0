//! Finding a code in seconds: code prefixes and word prefixes in English and Dutch names.

use serde::Serialize;

use crate::lists::Coded;

/// One search result with its relevance (higher is better).
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit<'a, T> {
    /// The matching entry.
    pub entry: &'a T,
    /// 100 exact code, 80 code prefix, 60 every query word starts a word of a name or synonym,
    /// 30 every query word occurs inside a name or synonym.
    pub score: u8,
}

/// Lowercases and folds the accented letters of Dutch (é, ë, ï, ...) to ASCII.
pub(crate) fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ç' => 'c',
            other => other,
        })
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn score<T: Coded>(entry: &T, query: &str, query_words: &[&str]) -> Option<u8> {
    let code = fold(entry.code());
    if code == query {
        return Some(100);
    }
    if code.starts_with(query) {
        return Some(80);
    }
    let terms: Vec<String> = entry.search_terms().into_iter().map(fold).collect();
    let term_words: Vec<&str> = terms.iter().flat_map(|t| words(t)).collect();
    if query_words
        .iter()
        .all(|q| term_words.iter().any(|w| w.starts_with(q)))
    {
        return Some(60);
    }
    if query_words
        .iter()
        .all(|q| terms.iter().any(|t| t.contains(q)))
    {
        return Some(30);
    }
    None
}

pub(crate) fn search_entries<'a, T: Coded + 'a>(
    entries: impl Iterator<Item = &'a T>,
    query: &str,
    limit: usize,
) -> Vec<SearchHit<'a, T>> {
    let query = fold(query.trim());
    let query_words: Vec<&str> = words(&query).collect();
    let mut hits: Vec<SearchHit<'a, T>> = entries
        .filter_map(|entry| {
            if query_words.is_empty() {
                return Some(SearchHit { entry, score: 0 });
            }
            score(entry, &query, &query_words).map(|score| SearchHit { entry, score })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.entry.code().cmp(b.entry.code()))
    });
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use crate::CodeLists;

    #[test]
    fn finds_codes_by_prefix_and_by_dutch_or_english_words() {
        let lists = CodeLists::bundled().unwrap();
        let hits = lists.diagnoses.search("L69", None, 10);
        assert!(hits.iter().any(|h| h.entry.code == "L694"));
        assert!(hits.iter().all(|h| h.entry.code.starts_with("L69")));
        let by_word = lists.diagnoses.search("epicondyl", None, 10);
        assert!(
            by_word.iter().any(|h| h.entry.code == "L694"),
            "{by_word:?}"
        );
        let bakery = lists.sectors.search("bakker", None, 10);
        assert!(bakery.iter().any(|h| h.entry.code == "1071"), "{bakery:?}");
        let noise = lists.exposures.search("lawaai", None, 5);
        assert!(!noise.is_empty());
        assert_eq!(lists.diagnoses.search("L694", None, 3)[0].score, 100);
    }

    #[test]
    fn search_is_accent_insensitive() {
        assert_eq!(super::fold("Eczéém"), "eczeem");
    }
}
