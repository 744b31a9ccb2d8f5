//! Safe local file names from URLs and list entries. (First version; batch mode extends it.)

/// The URL's last path segment as a safe file name, or `None` when it has none (e.g. `https://host/`).
pub fn name_from_url(url: &str) -> Option<String> {
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    let after_scheme = without_query
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(without_query);
    let path = after_scheme.split_once('/').map(|(_, path)| path)?;
    let last = path.rsplit('/').next()?;
    sanitize_component(last)
}

/// One path component made safe: no separators, no `.`/`..`, no control characters; `None` if nothing
/// usable is left.
pub fn sanitize_component(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        None
    } else {
        Some(cleaned)
    }
}
