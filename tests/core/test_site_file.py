import pytest

from app.core.errors import ConfigError
from app.core.paths import EXAMPLE_SITE
from app.core.site import load_site, parse_site


def test_example_site_is_one_pcs_and_one_lfp_bess_of_4x8x16():
    site = load_site(EXAMPLE_SITE)
    assert len(site.pcs) == 1 and len(site.bess) == 1
    bess = site.bess[0]
    assert bess.chemistry == "lfp"
    assert [(r.modules, r.cells_per_module) for r in bess.racks] == [(8, 16)] * 4
    assert site.cell_count == 512
    assert bess.racks[2].path == "site.bess1.rack03"


def _broken(old: str, new: str) -> str:
    text = EXAMPLE_SITE.read_text()
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,key,needle", [
    ('rated_power_kw = 250.0', 'rated_power_kw = "big"', "pcs[0].rated_power_kw", 'rated_power_kw = "big"'),
    ('chemistry = "lfp"', 'chemistry = "lead"', "bess[0].chemistry", 'chemistry = "lead"'),
    ('poll_period_s = 1.0', 'poll_period_s = -1', "link[0].poll_period_s", "poll_period_s = -1"),
    ('{ link = "bms1", unit_id = 3 }', '{ link = "bms9", unit_id = 3 }', "bess[0].racks[2].link", "bms9"),
    ('{ link = "bms1", unit_id = 4 }', '{ link = "bms1", unit_id = 2 }', "bess[0].racks[3].unit_id",
     '{ link = "bms1", unit_id = 2 },\n]'),
    ('kind = "modbus-tcp"', 'kind = "carrier-pigeon"', "link[0].kind", "carrier-pigeon"),
])
def test_validation_names_the_key_and_its_line(old, new, key, needle):
    text = _broken(old, new)
    with pytest.raises(ConfigError) as err:
        parse_site(text, "site.toml")
    message = str(err.value)
    assert key in message
    line = _line_of(text, needle.split("\n")[0]) if "\n" not in needle else text[: text.index(needle)].count("\n") + 1
    assert message.startswith(f"site.toml:{line}:"), message


def test_missing_required_key_is_named():
    with pytest.raises(ConfigError, match=r"pcs\[0\].*rated_power_kw"):
        parse_site(_broken("rated_power_kw = 250.0\n", ""), "site.toml")


def test_unknown_key_is_refused_with_its_line():
    text = _broken("timeout_s = 0.5", "timeout_s = 0.5\npoll_periode_s = 2")
    with pytest.raises(ConfigError, match=r"site.toml:\d+: link\[0\].poll_periode_s: unknown key"):
        parse_site(text, "site.toml")


def test_toml_syntax_error_gives_line():
    with pytest.raises(ConfigError, match=r"TOML syntax error.*line 3"):
        parse_site('[site]\nname = "x"\nbroken = \n', "site.toml")


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read site file"):
        load_site(tmp_path / "missing.toml")
