"""Web front end: a Gradio chat over a rag.Index (see ui/app.py; `rag serve` starts it)."""
