"""A read of the pipe may end anywhere in a chunk (the sender reads ``READ_SIZE`` bytes at a
time from a pipe holding up to a megabyte): ``FrameAssembler`` must keep an incomplete chunk
until its last byte has come, never take the bytes it has so far for the whole chunk.

A chunk taken early is cut short, and the bytes that complete it are then read as the next
chunk's header: frames come out torn, or vanish, with no report. The existing test feeds a
stream in pieces of 1000 bytes, whose ends never fall in the last few bytes of a chunk; here
every cut position is tried.
"""

from __future__ import annotations

from mixpanel_core.multiprocess.pipe import END, HEADER, PAYLOAD, START, FrameAssembler


def chunks(pid: int, frame: bytes, records: int) -> list[bytes]:
    """``frame`` as the chunks a producer with ``pid`` writes."""
    parts = [frame[i : i + PAYLOAD] for i in range(0, len(frame), PAYLOAD)]
    flags = [START if i == 0 else 0 for i in range(len(parts))]
    flags[-1] |= END
    return [HEADER.pack(pid, 1, f, records, len(p)) + p for f, p in zip(flags, parts, strict=True)]


def test_a_read_ending_anywhere_in_a_chunk_yields_the_frames_whole() -> None:
    one = bytes(range(256)) * ((2 * PAYLOAD) // 256) + b"tail of one"
    two = b"two" * 50
    stream = b"".join(chunks(100, one, 3) + chunks(200, two, 1))
    for cut in range(1, len(stream)):
        assembler = FrameAssembler()
        items = assembler.feed(stream[:cut]) + assembler.feed(stream[cut:])
        assert items == [one, two], f"a read ending at byte {cut}"
        assert assembler.cuts == []
        assert assembler.pending_pids() == set()


def test_a_stream_read_one_byte_at_a_time_yields_the_frames_whole() -> None:
    frames = [b"a" * (PAYLOAD + 7), b"b", b"c" * PAYLOAD]
    stream = b"".join(chunk for n, f in enumerate(frames) for chunk in chunks(7, f, n + 1))
    assembler = FrameAssembler()
    items = [item for i in range(len(stream)) for item in assembler.feed(stream[i : i + 1])]
    assert items == frames
    assert assembler.cuts == []
