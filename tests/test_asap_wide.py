"""The wide (n)ASAP set builder: nothing of the exclusion list gets in, and the tuning and
validation halves split by piece (benchmarks/asap_wide.py)."""

import sys

import pytest
from conftest import ROOT, SHARED

sys.path.insert(0, str(ROOT / "benchmarks"))
import asap_wide  # noqa: E402

from bridge import asap

EXCLUDE = SHARED / "data" / "nasap-train" / "exclude.txt"
pytestmark = pytest.mark.skipif(not EXCLUDE.is_file(), reason="shared exclusion list not present")


def listing(folders: list[str], perfs: tuple[str, ...] = ("A01", "B02")) -> list[str]:
    """What an (n)ASAP tree lists for these score folders."""
    out = []
    for f in folders:
        out.append(f"{f}/xml_score.musicxml")
        for p in perfs:
            out += [f"{f}/{p}.mid", f"{f}/{p}_annotations.txt", f"{f}/{p}{asap.ALIGN_SUFFIX}"]
    return out


def test_no_excluded_piece_is_ever_selected():
    excluded = asap.read_exclusions(EXCLUDE)
    assert len(excluded) > 30 and "Schumann/Toccata" in excluded
    # every listed folder, versions of them the list does not name, and folders beside them
    versions = [f + suffix for f in excluded for suffix in ("", "_no_repeat", "_repeat", "_extra_repeat")]
    allowed = ["Bach/Fugue/bwv_846", "Chopin/Sonata_2/2nd", "Schumann/Kreisleriana/2", "Liszt/Transcendental_Etudes/1"]
    chosen = asap.select(listing(versions + allowed), excluded)
    assert set(chosen) == set(allowed)
    for folder in chosen:
        assert not any(folder == x or folder.startswith(x + "/") for x in excluded)
        assert asap.piece_key(folder) not in {asap.piece_key(x) for x in excluded}
    # names match whole path parts: Liszt/Transcendental_Etudes/10 is listed, .../1 is not
    assert asap.is_excluded("Liszt/Transcendental_Etudes/10", excluded)
    assert not asap.is_excluded("Liszt/Transcendental_Etudes/1", excluded)


def test_only_folders_with_a_note_alignment_count():
    files = listing(["Bach/Fugue/bwv_846"]) + ["Bach/Fugue/bwv_848/xml_score.musicxml", "Bach/Fugue/bwv_848/X.mid"]
    assert asap.select(files, set()) == {"Bach/Fugue/bwv_846": ["A01", "B02"]}


def test_the_halves_split_by_piece():
    folders = [f"Composer/Set/{i}" for i in range(40)]
    folders += [f + "_no_repeat" for f in folders[:10]] + ["Beethoven/Piano_Sonatas/31-2_no_repeat"]
    tuned = {asap.piece_key("Beethoven/Piano_Sonatas/31-2_no_repeat")}
    sides = {f: asap_wide.side(f, tuned) for f in folders}
    assert set(sides.values()) == {"tune", "val"}  # both halves get pieces
    for f in folders:  # every version of a piece on one side; deterministic
        assert sides[f] == asap_wide.side(asap.piece_key(f), tuned) == asap_wide.side(f, tuned)
    assert sides["Beethoven/Piano_Sonatas/31-2_no_repeat"] == "tune"  # tuned on already
    assert asap_wide.side("Beethoven/Piano_Sonatas/31-2", tuned) == "tune"


def test_build_lays_out_pieces_as_the_yardstick_reads_them(tmp_path):
    src = tmp_path / "asap"
    excluded = {"Schumann/Toccata"}
    for rel in listing(["Bach/Fugue/bwv_846", "Schumann/Toccata"]) + ["metadata.csv"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    (src / "Bach/Fugue/bwv_846/A01.mid").unlink()  # a snapshot without this file: the next one is taken
    out = tmp_path / "out"
    written = asap_wide.build(asap.Source(src), out, excluded, tmp_path / "no-nasap-dev", per_piece=1)
    assert written["missing"] == ["Bach/Fugue/bwv_846/A01"]
    (name,) = written["tune"] + written["val"]
    piece = out / asap_wide.side("Bach/Fugue/bwv_846", set()) / name
    assert name == "Bach_Fugue_bwv_846"
    assert (piece / "performance.mid").read_text() == "Bach/Fugue/bwv_846/B02.mid"
    assert (piece / "alignment.tsv").read_text().endswith("B02_note_alignments/note_alignment.tsv")
    assert {p.name for p in piece.iterdir()} == {"score.musicxml", "performance.mid", "alignment.tsv", "beats.txt"}
    assert not any("Toccata" in p.name for p in out.rglob("*"))
