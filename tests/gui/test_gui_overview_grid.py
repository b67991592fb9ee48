"""Overview grid and PCS boxes: grid breaker, load feeder, island phase and PCS mode from bus samples; a
site whose meter map lacks them shows "--"."""
from __future__ import annotations

from app.core.sample import Quality, Sample
from app.qt.screens.overview import OverviewScreen
from support import make_site


def _samples(**values) -> dict[str, Sample]:
    return {point.replace("__", "."): v if isinstance(v, Sample) else Sample(v, 0.0, 0.0, 0.0)
            for point, v in values.items()}


def _row(box, row: str) -> tuple[str, str]:
    label = box.values[row]
    return label.text(), label.property("state")


def test_missing_breaker_feeder_and_mode_points_show_dashes(tmp_path, qtbot):
    screen = OverviewScreen(make_site(tmp_path))
    qtbot.addWidget(screen)
    screen.update_values({})
    for row in ("Breaker", "Load feeder"):
        assert _row(screen.grid, row) == ("--", "stale")
    assert _row(screen.pcs["pcs1"], "Mode") == ("--", "stale")


def test_an_island_shows_its_phase_the_open_breaker_and_the_grid_forming_pcs(tmp_path, qtbot):
    screen = OverviewScreen(make_site(tmp_path))
    qtbot.addWidget(screen)
    screen.update_values(_samples(site__meter__grid_available=False, site__meter__breaker_closed=False,
                                  site__meter__load_feeder_enable=1, site__pcs1__operating_mode=1,
                                  site__ems__island_state="islanded"))
    assert _row(screen.grid, "Breaker") == ("OPEN", "")             # opened by the sequence, grid lost
    assert _row(screen.grid, "Load feeder") == ("ON", "")
    assert _row(screen.grid, "Island") == ("ISLAND: islanded", "alarm")
    assert _row(screen.pcs["pcs1"], "Mode") == ("GRID-FORMING", "")

    screen.update_values(_samples(site__meter__breaker_closed=Sample(True, 0.0, 0.0, 0.0, Quality.STALE),
                                  site__ems__island_state="connected"))
    assert _row(screen.grid, "Breaker") == ("CLOSED (STALE)", "stale")
    assert _row(screen.grid, "Island") == ("connected", "")
