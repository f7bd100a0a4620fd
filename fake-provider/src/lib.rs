//! A fake LLM provider for tests.
