"""Question answering with exact citations over Chinese technology-transfer news."""
from rag.records import Answer, Chunk, Citation, Document, Hit, IngestReport
from rag.settings import Settings

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Hit", "IngestReport", "Settings"]


def __getattr__(name):  # lazy: `from rag import Assistant` without importing torch at package import
    if name == "Assistant":
        from rag.assistant import Assistant

        return Assistant
    raise AttributeError(name)
