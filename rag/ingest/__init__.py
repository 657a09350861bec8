"""Ingestion: corpus files → Documents (formats, header metadata) → Chunks with exact offsets."""
