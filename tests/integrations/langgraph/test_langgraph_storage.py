"""What the saver stores: linear in steps, checked on every read, never pickle."""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

import lg_graphs as graphs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from kaizen.integrations.langgraph import KaizenSaver, SavedDataCorruptError, UnsafeSerializerError
from kaizen.integrations.langgraph.encoding import DELTA, WHOLE, Chain, StoredBlob, digest, encode, rebuild

SERDE = JsonPlusSerializer()


def run_turns(saver, thread, turns):
    graph = graphs.chat_graph(saver)
    config = {"configurable": {"thread_id": thread}}
    for n in range(turns):
        graph.invoke(graphs.human(f"question number {n} " + "x" * 200, n), config)
    return graph, config


def test_bytes_grow_linearly_with_steps(saver_url):
    """Doubling the turns doubles the bytes (storing whole message lists would quadruple them)."""
    with KaizenSaver.from_conn_string(saver_url) as saver:
        run_turns(saver, "short", 40)
        run_turns(saver, "long", 80)
        short, long = saver.stored_bytes("short"), saver.stored_bytes("long")
    assert 1.8 < long / short < 2.3, (short, long)


def test_growing_list_is_stored_as_appended_items(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph, config = run_turns(saver, "chat", 30)
        latest = saver.get_tuple(config).checkpoint
        whole_list = len(SERDE.dumps_typed(latest["channel_values"]["messages"])[1])
        version = str(latest["channel_versions"]["messages"])
        chain = saver.tables.blob_chains("chat", "", {"messages": version})["messages"]
    # one whole first version, then only what each of the 59 later versions appended
    assert chain.root_kind == WHOLE and chain.target.kind == DELTA and chain.target.depth == 59
    assert len(chain.root_data) + sum(map(len, chain.deltas)) <= whole_list


# --- damage ---------------------------------------------------------------------------------
def sql(saver_url: str):
    """(connection, placeholder style) on the store's own database, for tampering like a disk would."""
    if saver_url.startswith("sqlite:"):
        return sqlite3.connect(saver_url[len("sqlite:///"):], isolation_level=None), "?"
    import psycopg

    parts = urlsplit(saver_url)
    schema = parse_qs(parts.query)["schema"][0]
    conn = psycopg.connect(parts._replace(query="").geturl(), autocommit=True, options=f"-c search_path={schema}")
    return conn, "%s"


def tamper(saver_url: str, select: str, update: str) -> None:
    conn, mark = sql(saver_url)
    try:
        key = conn.execute(select.replace("?", mark)).fetchone()
        assert key is not None, select
        data = bytes(key[0])
        flipped = data[:-1] + bytes([data[-1] ^ 0x01])
        conn.execute(update.replace("?", mark), (flipped, *key[1:]))
    finally:
        conn.close()


DAMAGE = {
    "appended items": (
        "SELECT data, channel, version FROM langgraph_blobs WHERE kind = 'delta' ORDER BY version LIMIT 1",
        "UPDATE langgraph_blobs SET data = ? WHERE channel = ? AND version = ?",
    ),
    "first whole list": (
        "SELECT data, channel, version FROM langgraph_blobs WHERE channel = 'messages' AND kind = 'whole' LIMIT 1",
        "UPDATE langgraph_blobs SET data = ? WHERE channel = ? AND version = ?",
    ),
    "checkpoint row": (
        "SELECT checkpoint, checkpoint_id FROM langgraph_checkpoints ORDER BY checkpoint_id DESC LIMIT 1",
        "UPDATE langgraph_checkpoints SET checkpoint = ? WHERE checkpoint_id = ?",
    ),
}


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("part", sorted(DAMAGE))
def test_damaged_bytes_are_detected_and_named(saver_url, part):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph, config = run_turns(saver, "damaged", 6)
    tamper(saver_url, *DAMAGE[part])
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.chat_graph(saver)
        with pytest.raises(SavedDataCorruptError, match="thread 'damaged'.*damaged"):
            graph.get_state(config)


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_damaged_pending_write_is_detected(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.approval_graph(saver)
        config = {"configurable": {"thread_id": "w"}}
        graph.invoke(graphs.human("draft", 0), config)  # stops at the interrupt: its write is pending
    tamper(saver_url, "SELECT value, task_id, idx FROM langgraph_writes WHERE channel = '__interrupt__'",
           "UPDATE langgraph_writes SET value = ? WHERE task_id = ? AND idx = ?")
    with KaizenSaver.from_conn_string(saver_url) as saver:
        with pytest.raises(SavedDataCorruptError, match="pending write"):
            graphs.approval_graph(saver).get_state(config)


# --- never pickle ---------------------------------------------------------------------------
def test_a_serializer_with_pickle_fallback_is_refused():
    with pytest.raises(UnsafeSerializerError, match="pickle"):
        KaizenSaver("memory://", serde=JsonPlusSerializer(pickle_fallback=True))


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_stored_pickle_is_never_loaded(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.approval_graph(saver)
        config = {"configurable": {"thread_id": "p"}}
        graph.invoke(graphs.human("draft", 0), config)
    conn, _ = sql(saver_url)
    payload = b"\x80\x04K\x01."  # a pickle, with a checksum that matches it
    conn.execute("UPDATE langgraph_writes SET type = 'pickle', value = ?, checksum = ?",
                 (payload, digest(b"pickle", b"\0", payload)))
    conn.close()
    with KaizenSaver.from_conn_string(saver_url) as saver:
        with pytest.raises(UnsafeSerializerError, match="never stores or loads pickle"):
            graphs.approval_graph(saver).get_state(config)


def test_a_value_msgpack_cannot_encode_is_an_error_not_a_pickle():
    class Opaque:
        pass

    saver = KaizenSaver("memory://")
    config = {"configurable": {"thread_id": "o"}}
    with pytest.raises(TypeError, match="Opaque"):
        saver.put(config, {"v": 1, "id": "1", "ts": "", "channel_values": {"x": Opaque()},
                           "channel_versions": {"x": 1}, "versions_seen": {}}, {}, {"x": 1})
    assert saver.get_tuple(config) is None


# --- the encoding, by property ----------------------------------------------------------------
items = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def stored(version: str, blob) -> StoredBlob:
    return StoredBlob.of(version, blob)


def chain_of(*blobs: StoredBlob) -> Chain:
    return Chain.walk(blobs[-1], {blob.version: blob for blob in blobs})


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items, max_size=40), st.lists(items, max_size=40), st.data())
def test_delta_is_used_exactly_when_the_new_list_extends_the_old(old, added, data):
    base = encode(SERDE, old, "1", None, None)
    new = old + added
    changed = list(new)
    mutated = bool(old) and data.draw(st.booleans())
    if mutated:
        position = data.draw(st.integers(0, len(old) - 1))
        changed[position] = ["changed", changed[position]]
    blob = encode(SERDE, changed, "2", "1", base.meta)
    full = SERDE.dumps_typed(changed)
    assert blob.kind == (WHOLE if mutated else DELTA)
    chain = chain_of(stored("1", base), stored("2", blob))
    assert rebuild(chain) == full
    assert SERDE.loads_typed(rebuild(chain)) == changed


@given(items)
def test_any_value_round_trips_whole(value):
    blob = encode(SERDE, value, "1", None, None)
    assert SERDE.loads_typed(rebuild(chain_of(stored("1", blob)))) == value


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"], indirect=True)
def test_a_base_deleted_by_another_saver_is_not_referenced(saver_url):
    """Saver A remembers the version it would extend; saver B deletes the thread meanwhile: A's
    next checkpoint stores the list whole instead of pointing at the deleted version."""
    from langchain_core.messages import HumanMessage

    def checkpoint(cid, messages, version):
        return {"v": 1, "id": cid, "ts": "2026-01-01T00:00:00+00:00", "channel_values": {"messages": messages},
                "channel_versions": {"messages": version}, "versions_seen": {}}

    first = [HumanMessage(content="one", id="1")]
    second = first + [HumanMessage(content="two", id="2")]
    with KaizenSaver.from_conn_string(saver_url) as a, KaizenSaver.from_conn_string(saver_url) as b:
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        stored1 = a.put(config, checkpoint("1", first, "1"), {}, {"messages": "1"})
        b.delete_thread("t")
        stored2 = a.put(stored1, checkpoint("2", second, "2"), {}, {"messages": "2"})
        assert [m.content for m in a.get_tuple(stored2).checkpoint["channel_values"]["messages"]] == ["one", "two"]
