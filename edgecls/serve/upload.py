"""A classify request's image and text fields, read as the body arrives, with the key checked as early as
the request allows.

A key in the headers or the query is checked before any of the body is read (the caller does that). A
DeepStack client sends it as the form field ``api_key`` instead, usually before the image (``requests``
writes the form fields before the files): the multipart body is parsed as it streams in, so a wrong key
there is refused before the image is read. Only a request whose image comes before any key has to be held
until the end; at most ``max_unverified`` such bodies are held at once across the service, and the next
one is answered 503 as its image begins. A raw image body carries no form field, so without a key in the
headers it is refused unread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from edgecls.serve.errors import HTTPError

__all__ = ["Upload", "Unverified", "read_upload", "MAX_FIELD_BYTES"]

MAX_FIELD_BYTES = 64 * 1024
"""A text field's size limit (``api_key``, ``top_k``, ``threshold``, ``boxes`` ...)."""
MAX_PARTS = 32
_RAW_TYPES = ("image/", "application/octet-stream")


@dataclass
class Upload:
    """The image bytes and the text fields of a request (the query's and the form's)."""

    image: bytes
    fields: dict[str, str]


@dataclass
class Unverified:
    """How many bodies are held before their key is known, across the service (the event loop's alone)."""

    limit: int
    held: int = 0

    def take(self) -> None:
        """One more, or HTTPError 503 when ``limit`` are held."""
        if self.held >= self.limit:
            raise HTTPError(503, "too many uploads are waiting for their API key; send the key before the image "
                                 "(X-API-Key header, Bearer token, or the api_key field first)", {"Retry-After": "1"})
        self.held += 1

    def give(self) -> None:
        self.held -= 1


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    data: bytearray = field(default_factory=bytearray)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class _Form:
    """The multipart parser's callbacks: fields kept small, the image kept whole, the key checked at once."""

    def __init__(self, check_key: Callable[[str | None], None] | None, unverified: Unverified) -> None:
        self.check_key, self.unverified = check_key, unverified
        self.fields: dict[str, str] = {}
        self.image: bytearray | None = None
        self.holding = False
        self.parts = 0
        self._part = _Part()
        self._header = [b"", b""]

    @property
    def verified(self) -> bool:
        return self.check_key is None

    def release(self) -> None:
        if self.holding:
            self.holding = False
            self.unverified.give()

    def verify(self, key: str | None) -> None:
        """Check ``key`` (HTTPError 401 when wrong or missing); a held body is no longer unverified."""
        if self.check_key is not None:
            self.check_key(key)
            self.check_key = None
            self.release()

    # python-multipart callbacks
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise HTTPError(400, f"the form has more than {MAX_PARTS} parts")
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]
        if len(self._header[1]) > MAX_FIELD_BYTES:
            raise HTTPError(400, "a form part's header is too long")

    def on_header_end(self) -> None:
        self._part.headers.append((self._header[0].lower(), self._header[1]))
        self._header = [b"", b""]

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition = dict(self._part.headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part.is_file = b"filename" in options
        if self._part.name == "image":
            if self.image is not None:
                raise HTTPError(400, "the form has two 'image' fields; send one picture per request")
            if not self.verified:
                self.unverified.take()
                self.holding = True
            self.image = self._part.data

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.name == "image":
            part.data += data[start:end]
        elif not part.is_file:  # a text field; other files are not kept
            if len(part.data) + end - start > MAX_FIELD_BYTES:
                raise HTTPError(400, f"form field {part.name!r} is over {MAX_FIELD_BYTES:,} bytes")
            part.data += data[start:end]

    def on_part_end(self) -> None:
        part = self._part
        if part.name == "image" or part.is_file:
            return
        value = part.data.decode("utf-8", "replace")
        self.fields[part.name] = value
        if part.name == "api_key":
            self.verify(value)

    def callbacks(self) -> dict[str, Callable]:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished")}


async def _chunks(request: Request, limit: int):
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPError(413, f"request body of {int(length):,} bytes is over the limit of {limit:,}")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request body is over the limit of {limit:,} bytes")
        yield chunk


async def read_upload(request: Request, *, limit: int, check_key: Callable[[str | None], None] | None,
                      unverified: Unverified) -> Upload:
    """The request's image (multipart field ``image``, or a raw image body) and its text fields.

    ``check_key``: None when the request needs no further check (no key configured, or the headers' key was
    accepted); else it is called with the form's ``api_key`` (None when absent) as soon as that is known.

    Raises:
        HTTPError: 401 (key missing or wrong), 413 (over ``limit``), 415 (content type), 400 (malformed
            form, no image, an empty image, a field over :data:`MAX_FIELD_BYTES`), 503 (too many bodies
            waiting for their key).
        starlette.requests.ClientDisconnect: the client went away before the body was read.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields = dict(request.query_params)
    if kind == "multipart/form-data":
        form = _Form(check_key, unverified)
        try:
            image = await _parse(request, limit, form)
            form.verify(form.fields.get("api_key"))
        finally:
            form.release()
        fields.update(form.fields)
        if image is None:
            raise HTTPError(400, "no image: send the picture as the multipart file field 'image'")
    elif kind.startswith(_RAW_TYPES):
        if check_key is not None:  # a raw body has no form field to carry the key
            check_key(None)
        image = bytearray()
        async for chunk in _chunks(request, limit):
            image += chunk
    else:
        raise HTTPError(415, f"unsupported content type {kind or '(none)'!r}: send multipart/form-data with a "
                             "field 'image', or the image itself as image/jpeg, image/png, ...")
    if not image:
        raise HTTPError(400, "the image is empty (0 bytes)")
    return Upload(bytes(image), fields)


async def _parse(request: Request, limit: int, form: _Form) -> bytearray | None:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPError(400, "malformed multipart body (no boundary in its content type)")
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for chunk in _chunks(request, limit):
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise HTTPError(400, f"malformed multipart body ({str(exc).strip() or type(exc).__name__})") from None
    return form.image
