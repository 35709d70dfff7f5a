//! Reports of a conformance run: JUnit XML, Markdown and JSON, plus `merge` of shards.
