"""results.md: our Table-1-shaped row, then our row beside the paper's rows (eval/paper/), exactly as rendered."""

import json

from readlit.eval.report import beside_paper, markdown, write_report
from readlit.paper_results import paper_table

RUNTIME_NOTE = ("The paper's Runtime is the diffusion backbone's mean seconds per 121-frame 512² video on an NVIDIA "
                "A100; ours the backbone's mean seconds per video of this run, on its device.")
OURS_HEADER = ("| Method | FID ↓ | FVD ↓ | Sync-C ↑ | Sync-D ↓ | E-FID ↓ | Runtime (s) ↓ | PSNR ↑ | SSIM ↑ | LPIPS ↓ | "
               "Mouth-sync ↑ |\n|---|---|---|---|---|---|---|---|---|---|---|\n")


def test_a_hdtf_result_beside_every_row_of_the_papers_table1():
    results = {"dataset": "hdtf", "method": "READ (readlit)", "videos": 2,
               "metrics": {"fid": 15.5, "sync_c": 8.12345, "sync_d": 7.0, "runtime": 3.14159},
               "missing": {"fvd": "i3d_torchscript.pt is missing"}, "protocol": {"fvd": "styleganv, 16-frame clips"}}
    # E-FID was not asked for (neither scored nor missing): not a column both have
    expected = (
        "# hdtf: 2 videos\n\n" + OURS_HEADER +
        "| READ (readlit) | 15.500 | missing | 8.123 | 7.000 | — | 3.14 | — | — | — | — |\n\n"
        "- fvd: missing — i3d_torchscript.pt is missing\n"
        "- fvd: styleganv, 16-frame clips\n\n"
        "## Beside the paper: Table 1, HDTF\n\n"
        "| Method | FID ↓ | FVD ↓ | Sync-C ↑ | Sync-D ↓ | Runtime (s) ↓ |\n"
        "|---|---|---|---|---|---|\n"
        "| READ (readlit) | 15.500 | missing | 8.123 | 7.000 | 3.14 |\n"
        "| FantasyTalking (paper) | 16.489 | 315.291 | 5.138 | 10.349 | 896.089 |\n"
        "| Hallo (paper) | 15.929 | 315.904 | 6.995 | 7.819 | 212.002 |\n"
        "| EchoMimic (paper) | 18.384 | 557.809 | 5.852 | 9.052 | 124.105 |\n"
        "| Sonic (paper) | 16.894 | 245.416 | 8.525 | 6.576 | 83.584 |\n"
        "| AniPortrait (paper) | 17.603 | 503.622 | 3.555 | 10.830 | 76.778 |\n"
        "| Ditto (paper) | 15.440 | 399.965 | 5.458 | 9.565 | 17.974 |\n"
        "| AniTalker (paper) | 39.155 | 514.388 | 5.838 | 8.736 | 13.577 |\n"
        "| READ (paper) | 15.073 | 235.319 | 8.658 | 6.890 | 4.421 |\n\n"
        "The paper's rows: Table 1 of READ (arXiv 2508.03457), \"Overall comparisons on HDTF and MEAD.\", as printed "
        f"(eval/paper/table1.yaml). {RUNTIME_NOTE}\n")
    assert markdown(results, paper_table(1)) == expected


def test_a_synthetic_result_sets_the_papers_rows_for_reference_only():
    results = {"dataset": "synthetic", "method": "READ (readlit)", "videos": 4,
               "metrics": {"psnr": 21.234, "mouth_sync": 0.61234, "mouth_offset": 0.5, "runtime": 0.5},
               "missing": {"sync_c": "syncnet_v2.model is missing", "sync_d": "syncnet_v2.model is missing"},
               "protocol": {}}
    expected = (
        "# synthetic: 4 videos\n\n" + OURS_HEADER +
        "| READ (readlit) | — | — | missing | missing | — | 0.50 | 21.23 | — | — | 0.612 |\n\n"
        "- sync_c: missing — syncnet_v2.model is missing\n"
        "- sync_d: missing — syncnet_v2.model is missing\n\n"
        "## The paper's Table 1 for reference: HDTF and MEAD numbers, not comparable with synthetic data\n\n"
        "| Method | Sync-C ↑ | Sync-D ↓ | Runtime (s) ↓ |\n"
        "|---|---|---|---|\n"
        "| READ (readlit) | missing | missing | 0.50 |\n"
        "| READ (paper, HDTF) | 8.658 | 6.890 | 4.421 |\n"
        "| Sonic (paper, HDTF) | 8.525 | 6.576 | 83.584 |\n"
        "| Ditto (paper, HDTF) | 5.458 | 9.565 | 17.974 |\n"
        "| READ (paper, MEAD) | 7.672 | 8.080 | 4.421 |\n"
        "| Sonic (paper, MEAD) | 7.501 | 7.831 | 83.854 |\n"
        "| Ditto (paper, MEAD) | 5.199 | 9.595 | 17.974 |\n\n"
        "For reference only, on other data: Table 1 of READ (arXiv 2508.03457), \"Overall comparisons on HDTF and "
        f"MEAD.\", as printed (eval/paper/table1.yaml). {RUNTIME_NOTE}\n")
    assert markdown(results, paper_table(1)) == expected
    assert markdown(results) == expected.split("\n## ")[0]  # no paper table: our table alone


def test_table3_rows_are_lengths_and_ours_says_its_length():
    results = {"dataset": "hdtf", "method": "READ (readlit)", "videos": 3, "frames": 457,
               "metrics": {"fid": 16.0, "sync_c": 8.0, "sync_d": 7.25, "runtime": 12.0}, "missing": {}, "protocol": {}}
    assert beside_paper(results, paper_table(3)) == [
        "", "## Beside the paper: Table 3, HDTF", "",
        "| Method | FID ↓ | Sync-C ↑ | Sync-D ↓ |", "|---|---|---|---|",
        "| READ (readlit), 457 frames | 16.000 | 8.000 | 7.250 |",
        "| READ (paper, 121 frames) | 15.073 | 8.658 | 6.891 |",
        "| READ (paper, 457 frames) | 15.241 | 8.767 | 6.813 |",
        "| READ (paper, 1017 frames) | 15.195 | 8.677 | 6.824 |", "",
        "The paper's rows: Table 3 of READ (arXiv 2508.03457), \"Results of different generation lengths on HDTF.\", "
        "as printed (eval/paper/table3.yaml)."]
    assert beside_paper(results, paper_table(4)) == []  # the user study shares no column with a scored run


def test_write_report_writes_both_files(tmp_path):
    results = {"dataset": "mead", "method": "ours", "videos": 1, "metrics": {"fid": 40.0, "runtime": None},
               "missing": {}, "protocol": {}}
    json_path, md_path = write_report(results, tmp_path / "out", paper_table(1))
    assert json.loads(json_path.read_text()) == results
    text = md_path.read_text()
    assert text == markdown(results, paper_table(1))
    assert "| ours | 40.000 |\n| FantasyTalking (paper) | 46.617 |" in text  # runtime None: not a shared column
    assert RUNTIME_NOTE not in text
