"""Building and damaging histories for the manager's tests."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.ids import new_checkpoint_id
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def grown(state: AgentState, n: int, tool: str = "Bash") -> AgentState:
    """``state`` plus one approval, one conversation entry and one completed action, as a new checkpoint."""
    return replace(
        state,
        checkpoint_id=new_checkpoint_id(),
        step_number=state.step_number + 1,
        approval_history=[*state.approval_history,
                          make_approval_record(tool, True, "once", {"n": n}, summary_limit=200)],
        conversation_history=[*state.conversation_history, {"role": "user", "content": f"message {n}"}],
        completed_actions=[*state.completed_actions, {"tool": tool, "n": n}],
    )


def saved_history(manager: SyncStateManager, agent_id: str, steps: int) -> list[str]:
    """Save ``steps`` checkpoints of ``agent_id``, each on top of the last; their ids, oldest first."""
    state = AgentState(agent_id=agent_id)
    ids = []
    for n in range(steps):
        state = replace(grown(state, n), parent_checkpoint_id=ids[-1] if ids else None)
        ids.append(manager.save_checkpoint(state))
    return ids


def _execute(manager: SyncStateManager, sql: str, params: tuple) -> None:
    store = manager.storage
    if type(store).__name__ == "SQLiteStorage":
        with sqlite3.connect(store.path) as conn:
            conn.execute(sql.replace("%s", "?"), params)
        return
    import psycopg

    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{store.schema}"')
        conn.execute(sql, params)


def damage_rows(manager: SyncStateManager, sql: str, params: tuple) -> None:
    """Change stored records behind the store's back, and drop SQLite's record packs: a load reads
    each packed block from its pack (an intact copy, checked the same way), and these tests are
    about what a load finds in the rows."""
    _execute(manager, sql, params)
    if type(manager.storage).__name__ == "SQLiteStorage":
        _execute(manager, "DELETE FROM record_packs", ())


def damage_checkpoint(manager: SyncStateManager, checkpoint_id: str) -> None:
    """Change a stored checkpoint row behind the store's back (its checksum no longer matches)."""
    _execute(manager, "UPDATE checkpoints SET step_number = step_number + 7 WHERE checkpoint_id = %s",
             (checkpoint_id,))


def damage_last_record(manager: SyncStateManager, agent_id: str) -> None:
    """Rewrite the newest stored approval record of the agent's first lineage."""
    lineage = manager.storage.list_lineages(agent_id)[0]
    records = manager.storage.read_records(lineage.lineage_id, "approval_history", 0, 2**62)
    last = records[-1]
    forged = last.data.replace(b'"approved":true', b'"approved":false')
    _execute(manager, "UPDATE records SET data = %s WHERE stream = 0 AND seq = %s", (forged, last.seq))
