"""The AMI frame parser: normalisation rules, UTF-8 across reads, malformed input."""

from __future__ import annotations

import pytest

from ivr_agent.amiframes import MAX_LINE, FrameReader, Malformed, _parse_slow, parse_frame

NEWCHANNEL = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: Local/s@caller-talking-00000001;1\r\n"
    "CallerIDNum: 13800138000\r\nCallerIDName: 张三丰\r\nAccountCode: \r\n"
    "Uniqueid: 1795633717.12\r\nLinkedid: 1795633717.12\r\n"
    "ChanVariable: CALL_ID=1795633717.12\r\nChanVariable: CALLER_KIND=talking\r\n"
    "ChanVariable: AGENT_ID=\r\n\r\n"
)


def feed_all(reader: FrameReader, *chunks: bytes) -> list[dict[str, str] | Malformed]:
    out: list[dict[str, str] | Malformed] = []
    for chunk in chunks:
        out.extend(reader.feed(chunk))
    return out


def test_event_becomes_plain_dict_with_asterisk_case() -> None:
    [frame] = FrameReader().feed(NEWCHANNEL.encode())
    assert type(frame) is dict
    assert frame["Event"] == "Newchannel"
    assert frame["CallerIDName"] == "张三丰"
    assert frame["AccountCode"] == ""
    with pytest.raises(KeyError):
        frame["uniqueid"]  # header names keep Asterisk's case: lookups are exact
    with pytest.raises(KeyError):
        frame["Uniquid"]  # a typo fails loudly (panoramisk's Message would return '')


def test_chanvariables_become_dotted_keys() -> None:
    [frame] = FrameReader().feed(NEWCHANNEL.encode())
    assert isinstance(frame, dict)
    assert frame["ChanVariable.CALL_ID"] == "1795633717.12"
    assert frame["ChanVariable.CALLER_KIND"] == "talking"
    assert frame["ChanVariable.AGENT_ID"] == ""
    assert "ChanVariable" not in frame


def test_dest_chanvariables_single_occurrence_and_value_with_equals() -> None:
    frame = parse_frame(
        "Event: AgentCalled\r\nChanVariable: CALL_ID=1.1\r\n"
        "DestChannel: Local/agent1@agents/n;1\r\n"
        "DestChanVariable: AGENT_ID=agent1\r\nDestChanVariable: NOTE=a=b: c\r\n"
    )
    assert frame == {
        "Event": "AgentCalled",
        "ChanVariable.CALL_ID": "1.1",
        "DestChannel": "Local/agent1@agents/n;1",
        "DestChanVariable.AGENT_ID": "agent1",
        "DestChanVariable.NOTE": "a=b: c",
    }


def test_asterisk11_chanvariable_with_channel_in_parens() -> None:
    frame = parse_frame(
        "Event: Newstate\r\nChannel: SIP/100-00000001\r\n"
        "ChanVariable(SIP/100-00000001): CALL_ID=42\r\nChanVariable(SIP/100-00000001): KIND=x\r\n"
    )
    assert frame == {
        "Event": "Newstate",
        "Channel": "SIP/100-00000001",
        "ChanVariable.CALL_ID": "42",
        "ChanVariable.KIND": "x",
    }


def test_other_repeated_headers_join_with_newline_in_order() -> None:
    frame = parse_frame(
        "Response: Success\r\nActionID: a1\r\nMessage: Command output follows\r\n"
        "Output: Channel   Location   State\r\nOutput: \r\nOutput: 0 active channels\r\n"
    )
    assert frame == {
        "Response": "Success",
        "ActionID": "a1",
        "Message": "Command output follows",
        "Output": "Channel   Location   State\n\n0 active channels",
    }


def test_same_chanvariable_twice_is_joined() -> None:
    frame = parse_frame("Event: X\r\nChanVariable: A=1\r\nChanVariable: A=2\r\n")
    assert frame == {"Event": "X", "ChanVariable.A": "1\n2"}


def test_header_without_space_after_colon_is_an_empty_value() -> None:
    assert parse_frame("Event: X\r\nAccountCode:\r\nUniqueid: 1.1") == {
        "Event": "X",
        "AccountCode": "",
        "Uniqueid": "1.1",
    }


@pytest.mark.parametrize(
    "raw",
    [
        NEWCHANNEL[:-4],
        "Event: X\r\nA: 1\r\nA: 2\r\nChanVariable: V=1",
        "Event: X\r\nDestChanVariable: V=1\r\nChanVariable: V=2\r\nChanVariable: W",
        "Response: Error\r\nActionID: 9\r\nMessage: Permission denied",
        "Event: X\r\nChanVariable(SIP/1): V=1",
    ],
)
def test_fast_path_agrees_with_slow_path(raw: str) -> None:
    assert parse_frame(raw) == _parse_slow(raw, MAX_LINE)


def test_banner_is_stripped_and_version_kept_even_when_split() -> None:
    data = b"Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: 1\r\n\r\n"
    for cut in range(1, len(data)):
        reader = FrameReader()
        frames = feed_all(reader, data[:cut], data[cut:])
        assert frames == [{"Response": "Success", "ActionID": "1"}], cut
        assert reader.version == "9.0.0"


def test_stream_without_banner_still_parses() -> None:
    reader = FrameReader()
    assert reader.feed(b"Event: X\r\n\r\n") == [{"Event": "X"}]
    assert reader.version is None


def test_utf8_split_at_every_byte_boundary_arrives_intact() -> None:
    # panoramisk decodes each read on its own with errors='ignore': a split 张 simply vanishes.
    data = NEWCHANNEL.encode()
    for cut in range(1, len(data)):
        [frame] = feed_all(FrameReader(), data[:cut], data[cut:])
        assert isinstance(frame, dict)
        assert frame["CallerIDName"] == "张三丰", cut


def test_one_byte_per_read() -> None:
    data = NEWCHANNEL.encode() * 2
    frames = feed_all(FrameReader(), *(data[i : i + 1] for i in range(len(data))))
    assert len(frames) == 2
    assert all(isinstance(f, dict) and f["CallerIDName"] == "张三丰" for f in frames)


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    [frame] = FrameReader().feed(b"Event: X\r\nCallerIDName: \xe5\xbc\r\n\r\n")
    assert frame == {"Event": "X", "CallerIDName": "\ufffd"}


def test_extra_blank_lines_between_frames_are_ignored() -> None:
    frames = FrameReader().feed(b"Event: A\r\n\r\n\r\n\r\n\r\nEvent: B\r\n\r\n")
    assert frames == [{"Event": "A"}, {"Event": "B"}]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xff\xfe\x01 junk", "line without colon"),
        (b"Event: X\r\nno colon here", "line without colon"),
        (b"Foo: bar\r\nBaz: 1", "neither Event nor Response"),
        (b"Event: Big\r\nData: " + b"x" * (MAX_LINE + 1), "line too long"),
    ],
)
def test_malformed_frames_are_reported_and_the_next_frame_still_parses(
    raw: bytes, reason: str
) -> None:
    frames = FrameReader().feed(b"Event: A\r\n\r\n" + raw + b"\r\n\r\nEvent: B\r\n\r\n")
    assert frames[0] == {"Event": "A"}
    assert isinstance(frames[1], Malformed)
    assert frames[1].reason == reason
    assert frames[2:] == [{"Event": "B"}]


def test_overlong_frame_without_end_is_discarded_up_to_the_next_end() -> None:
    reader = FrameReader(max_frame=100)
    out = feed_all(reader, b"Event: A\r\n\r\nEvent: Big\r\nData: ", b"y" * 150, b"y" * 50 + b"\r")
    assert out[0] == {"Event": "A"}
    assert isinstance(out[1], Malformed)
    assert out[1].reason == "frame too long"
    assert feed_all(reader, b"\n\r", b"\nEvent: B\r\n\r\n") == [{"Event": "B"}]


def test_legacy_follows_command_reply_gets_output_header() -> None:
    raw = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
        b"Channel: foo  State: Up\r\n1 active channel\r\n--END COMMAND--\r\n\r\n"
    )
    [frame] = FrameReader().feed(raw)
    assert frame == {
        "Response": "Follows",
        "Privilege": "Command",
        "ActionID": "c1",
        "Output": "Channel: foo  State: Up\n1 active channel",
    }


def test_legacy_follows_with_marker_glued_to_last_line() -> None:
    frame = parse_frame(
        "Response: Follows\r\nPrivilege: Command\r\nline one\nline two--END COMMAND--"
    )
    assert frame == {"Response": "Follows", "Privilege": "Command", "Output": "line one\nline two"}


def test_events_nobody_reads_are_counted_not_parsed() -> None:
    reader = FrameReader(events=frozenset({"Newchannel", "CoreShowChannelsComplete"}))
    blob = (
        NEWCHANNEL
        + "Event: SoftHangupRequest\r\nChannel: x\r\nCause: 16\r\n\r\n"
        + "Event: VarSet\r\n\r\n"  # a first line alone
        + "Event: CoreShowChannelsComplete\r\nActionID: 7\r\nListItems: 0\r\n\r\n"
        + "Event: QueueMember\r\nActionID: 8\r\nQueue: support\r\n\r\n"  # a list reply
        + "Response: Success\r\nActionID: 9\r\n\r\n"
    )
    got = reader.feed(blob.encode())
    assert [f.get("Event") or f.get("Response") for f in got if isinstance(f, dict)] == [
        "Newchannel",
        "CoreShowChannelsComplete",
        "QueueMember",
        "Success",
    ]
    assert reader.skipped == 2
    assert len(FrameReader().feed(blob.encode())) == 6  # without `events`: every frame
