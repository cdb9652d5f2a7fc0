"""``AppendOnlyView``: a save's O(1) look at the live history behaves as the list it stands for."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kaizen.core.autonomy.state.frozen import AppendOnlyView

bounds = st.one_of(st.none(), st.integers(-40, 40))


@given(st.lists(st.integers(), max_size=30), st.data())
def test_a_view_indexes_and_slices_as_the_prefix_it_shows_even_after_the_list_grows(items, data):
    length = data.draw(st.integers(0, len(items)))
    view = AppendOnlyView(items, length)
    items.extend([-1, -2, -3])  # the live list keeps growing; the view does not
    prefix = items[:length]
    assert len(view) == length and list(view) == prefix
    start, stop = data.draw(bounds), data.draw(bounds)
    step = data.draw(st.one_of(st.none(), st.integers(-4, 4).filter(bool)))
    assert view[start:stop:step] == prefix[start:stop:step]
    if length:
        index = data.draw(st.integers(-length, length - 1))
        assert view[index] == prefix[index]
