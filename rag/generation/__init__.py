"""Written answers through the user's own language model (OpenAI chat-completions protocol), every sentence checked
against the passages it cites; off unless a base URL is configured, and never needed."""
from rag.generation.check import Passage, check_written
from rag.generation.client import ChatClient, GenerationFailed, LLMConfig
from rag.generation.prompt import build_prompt
from rag.generation.written import written_answer

__all__ = ["ChatClient", "GenerationFailed", "LLMConfig", "Passage", "build_prompt", "check_written",
           "written_answer"]
