"""AMI wire format: bytes from the socket -> plain `dict[str, str]` frames, UTF-8 safe.

Header normalisation (the contract every consumer relies on):

* One frame is the text between two blank lines (`\\r\\n\\r\\n`); each line is `Name: value`.
  Header names keep Asterisk's case (`Uniqueid`, `ActionID`); lookups are exact, so a typo or a
  wrong case raises `KeyError` instead of quietly returning `''` like `panoramisk.Message` does.
* `ChanVariable: NAME=value` (Asterisk 12+) and the older `ChanVariable(Channel): NAME=value`
  become the key `ChanVariable.NAME`; the same for `DestChanVariable`. This applies to a single
  occurrence too, so a consumer never has to care how many variables were configured.
* Any other header that repeats (e.g. `Output` lines of a `Command`) is joined with `"\\n"` in
  arrival order; a key that repeats after normalisation is joined the same way.
* The legacy `Response: Follows` command reply (raw output ending in `--END COMMAND--`) is turned
  into the modern shape: its output lines become one `Output` header joined with `"\\n"`.
* A frame with a line lacking `:`, with a line longer than `max_line`, or with neither `Event`
  nor `Response` is reported as `Malformed` and never delivered. Text that grows past
  `max_frame` without a frame end is discarded up to the next frame end.
* `FrameReader(events=names)`: an event frame whose first line is `Event: X` with X not in
  `names` and that has no `ActionID` (no action waits for it) is counted in `skipped` and never
  parsed: a fifth of a call's frames (SoftHangupRequest, LocalBridge, QueueMemberStatus, ...)
  that nobody reads.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

Frame = dict[str, str]

_SEP = "\r\n\r\n"
_EOL = "\r\n"
_GREETING = "Asterisk Call Manager/"
# Asterisk's command output and dialplan dumps can be large; these bounds only stop a broken
# peer from making us buffer without limit.
MAX_LINE = 64 * 1024
MAX_FRAME = 8 * 1024 * 1024
# Headers that may precede the raw body of a legacy `Response: Follows` command reply.
_FOLLOWS_HEADERS = frozenset({"Response", "Privilege", "ActionID", "Message"})
_END_COMMAND = "--END COMMAND--"
_EVENT = "Event: "
_ACTION_ID = "ActionID:"


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that was skipped; `size` is its length in characters (no content: privacy)."""

    reason: str
    size: int


class FrameReader:
    """Incremental parser for one AMI connection: `feed(bytes)` -> complete frames so far."""

    __slots__ = (
        "_decode",
        "_discarding",
        "_greeted",
        "_max_frame",
        "_max_line",
        "_tail",
        "_wanted",
        "skipped",
        "version",
    )

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_frame: int = MAX_FRAME,
        events: frozenset[str] | None = None,
    ) -> None:
        # panoramisk decodes every TCP read on its own with errors='ignore', so a multi-byte
        # character cut by a read boundary silently vanishes. An incremental decoder keeps the
        # partial sequence until its remaining bytes arrive.
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._tail = ""
        self._greeted = False
        self._discarding = False
        self._max_line = max_line
        self._max_frame = max_frame
        self._wanted = events
        self.skipped = 0  # event frames not parsed: not in `events`, no ActionID
        self.version: str | None = None

    def feed(self, data: bytes) -> list[Frame | Malformed]:
        text = self._decode(data)
        if self._tail:
            text = self._tail + text
        if not self._greeted:
            text = self._strip_greeting(text)
            if not self._greeted:
                self._tail = text
                return []
        out: list[Frame | Malformed] = []
        if self._discarding:
            end = text.find(_SEP)
            if end < 0:
                self._tail = text[-3:]  # a frame end may be split across reads
                return out
            self._discarding = False
            text = text[end + 4 :]
        chunks = text.split(_SEP)
        self._tail = tail = chunks.pop()
        wanted = self._wanted
        for raw in chunks:
            if not raw:
                continue  # CRLF runs longer than one blank line yield empty chunks: not frames
            if wanted is not None and raw.startswith(_EVENT) and _unwanted(raw, wanted):
                self.skipped += 1
                continue
            out.append(parse_frame(raw, self._max_line))
        if len(tail) > self._max_frame:
            out.append(Malformed("frame too long", len(tail)))
            self._discarding = True
            self._tail = tail[-3:]
        return out

    def _strip_greeting(self, text: str) -> str:
        # The banner `Asterisk Call Manager/x.y.z` is a single line with no blank line after it,
        # so it arrives glued to the first real frame (the Login response).
        end = text.find(_EOL)
        if end < 0:
            if (_GREETING.startswith(text) or text.startswith(_GREETING)) and (
                len(text) <= self._max_line
            ):
                return text  # wait for the rest of the banner
            self._greeted = True  # not a banner: parse it as frames
            return text
        self._greeted = True
        line = text[:end]
        if line.startswith(_GREETING):
            self.version = line[len(_GREETING) :].strip()
            return text[end + 2 :]
        return text


def _unwanted(raw: str, wanted: frozenset[str]) -> bool:
    end = raw.find(_EOL)
    name = raw[len(_EVENT) :] if end < 0 else raw[len(_EVENT) : end]
    return name not in wanted and _ACTION_ID not in raw


def parse_frame(raw: str, max_line: int = MAX_LINE) -> Frame | Malformed:
    """One frame's text (without the blank line) -> Frame, or Malformed with the reason."""
    if len(raw) > max_line or raw.startswith("Response: Follows") or "Variable(" in raw:
        return _parse_slow(raw, max_line)
    # Hot path (every event goes through it): one pass, no function calls per line. The two
    # seeded keys route the ChanVariable lines into the rare "seen before" branch, so ordinary
    # headers pay for a single dict lookup.
    frame: Frame = {"ChanVariable": "", "DestChanVariable": ""}
    for line in raw.split(_EOL):
        key, sep, value = line.partition(": ")
        if not sep:
            return _parse_slow(raw, max_line)  # `Name:` with no value, junk, stray CRLF
        if key in frame:
            if key == "ChanVariable" or key == "DestChanVariable":
                name, _, value = value.partition("=")
                key = f"{key}.{name}"
                if key not in frame:
                    frame[key] = value
                    continue
            frame[key] = f"{frame[key]}\n{value}"
        else:
            frame[key] = value
    del frame["ChanVariable"], frame["DestChanVariable"]
    if "Event" not in frame and "Response" not in frame:
        return Malformed("neither Event nor Response", len(raw))
    return frame


def _parse_slow(raw: str, max_line: int) -> Frame | Malformed:
    if len(raw) > max_line and any(len(line) > max_line for line in raw.split(_EOL)):
        return Malformed("line too long", len(raw))
    if raw.startswith("Response: Follows"):
        return _parse_follows(raw)
    frame: Frame = {}
    for line in raw.split(_EOL):
        key, sep, value = line.partition(": ")
        if not sep:
            if not line:
                continue  # stray CRLF around a frame is harmless
            key, sep, value = line.partition(":")  # `Name:` with an empty value
            if not sep or not key:
                return Malformed("line without colon", len(raw))
        for base in ("ChanVariable", "DestChanVariable"):
            if key == base or (key.startswith(f"{base}(") and key.endswith(")")):
                # The `(Channel)` of the Asterisk 11 form is dropped: the event's Channel or
                # DestChannel header already names it.
                name, _, value = value.partition("=")
                key = f"{base}.{name}"
                break
        old = frame.get(key)
        frame[key] = value if old is None else f"{old}\n{value}"
    if "Event" not in frame and "Response" not in frame:
        return Malformed("neither Event nor Response" if frame else "empty frame", len(raw))
    return frame


def _parse_follows(raw: str) -> Frame | Malformed:
    lines = raw.split(_EOL)
    frame: Frame = {}
    i = 0
    while i < len(lines):
        key, sep, value = lines[i].partition(": ")
        if not sep or key not in _FOLLOWS_HEADERS:
            break
        frame[key] = value
        i += 1
    body = lines[i:]
    while body and body[-1] in ("", _END_COMMAND):
        body.pop()
    # Older Asterisk appends the end marker to the last output line instead of a line of its own.
    if body and body[-1].endswith(_END_COMMAND):
        body[-1] = body[-1][: -len(_END_COMMAND)].rstrip("\n")
    if body:
        frame["Output"] = "\n".join(body)
    return frame
