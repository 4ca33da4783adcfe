"""The dashboard's tabs, in display order.

Each entry is (tab title, module). The module exposes
``build(ctx: DashboardContext) -> None``, which is called inside ``with gr.Tab(title):``
and creates that tab's components and event handlers. Add a tab by adding a line.
"""

TABS: tuple[tuple[str, str], ...] = (
    ("Synthesize", "dashboard.synthesize_tab"),
    ("Streaming", "dashboard.streaming_tab"),
    ("Sweeps", "dashboard.sweeps_tab"),
    ("History", "dashboard.history_tab"),
    ("Profile", "dashboard.profile_tab"),
    ("Load", "dashboard.load_tab"),
)
