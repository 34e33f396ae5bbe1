"""Load advice documents and cut them into heading-aware chunks with stable ids."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from pipeline.errors import DebriefError

CHUNK_CHARS = 900  # MiniLM reads 256 word-pieces; ~900 characters of English stay under it


class AdviceDoc(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,80}$")
    title: str = Field(min_length=3)
    tags: list[str] = Field(default_factory=list)
    stance: Literal["keep", "decline", "neutral"] = "neutral"
    source: str = "unspecified"
    cues: list[str] = Field(default_factory=list)
    body: str
    path: str

    @field_validator("tags", "cues", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        if v is None:
            return []
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v


class PassageText(BaseModel):
    """A section of an advice document: what the corpus cuts and retrieval returns."""

    id: str
    doc_id: str
    title: str
    heading: str
    text: str
    stance: str
    tags: list[str]
    source: str


class Chunk(PassageText):
    position: int

    @property
    def embed_text(self) -> str:
        """What gets embedded: the title and heading give a short chunk its topic."""
        head = f"{self.title}: {self.heading}" if self.heading and self.heading != self.title else self.title
        return f"{head}\n{self.text}"

    @property
    def content_hash(self) -> str:
        payload = "\x1f".join([self.embed_text, self.stance, ",".join(self.tags), self.source])
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load_doc(path: Path) -> AdviceDoc:
    import frontmatter
    import yaml

    try:
        meta, body = frontmatter.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DebriefError(f"corpus document {path}: cannot read it ({exc}).") from None
    if not isinstance(meta, dict) or "id" not in meta:
        raise DebriefError(f"corpus document {path}: front matter needs at least 'id' and 'title'.")
    try:
        return AdviceDoc(**{k: v for k, v in meta.items() if k in AdviceDoc.model_fields},
                         body=body, path=str(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DebriefError(f"corpus document {path}: {loc}: {first['msg']}") from None


def load_corpus(dirs: list[Path]) -> list[AdviceDoc]:
    """All documents under the given folders; duplicate ids are an error, not a silent overwrite."""
    docs: dict[str, AdviceDoc] = {}
    for d in dirs:
        if not d.is_dir():
            raise DebriefError(f"corpus folder {d} does not exist.")
        for path in sorted(d.rglob("*.md")):
            rel = path.relative_to(d).parts
            if path.name.lower() == "readme.md" or any(p.startswith(".") for p in rel):
                continue
            doc = load_doc(path)
            if doc.id in docs:
                raise DebriefError(
                    f"corpus id '{doc.id}' appears twice: {docs[doc.id].path} and {path}."
                )
            docs[doc.id] = doc
    if not docs:
        raise DebriefError(f"no corpus documents found in {', '.join(map(str, dirs))}.")
    return list(docs.values())


def chunk_doc(doc: AdviceDoc) -> list[Chunk]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    by_heading = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=True
    ).split_text(doc.body)
    by_size = RecursiveCharacterTextSplitter(chunk_size=CHUNK_CHARS, chunk_overlap=120)
    chunks: list[Chunk] = []
    for section in by_heading:
        heading = " > ".join(
            section.metadata[k] for k in ("h1", "h2", "h3") if section.metadata.get(k)
        )
        for piece in by_size.split_text(section.page_content):
            if len(piece.strip()) < 40:
                continue
            chunks.append(
                Chunk(
                    id=f"{doc.id}#{len(chunks)}",
                    doc_id=doc.id,
                    title=doc.title,
                    heading=heading or doc.title,
                    text=piece.strip(),
                    stance=doc.stance,
                    tags=doc.tags,
                    source=doc.source,
                    position=len(chunks),
                )
            )
    return chunks


def chunk_corpus(docs: list[AdviceDoc]) -> list[Chunk]:
    return [c for d in docs for c in chunk_doc(d)]
