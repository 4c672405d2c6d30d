"""Query-time library: load an index, retrieve, answer with citations, check grounding."""

from rag.qa import PolicyQA, QueryError

__all__ = ["PolicyQA", "QueryError"]
