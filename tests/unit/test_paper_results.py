"""The paper's numbers in eval/paper/ are the ones it prints (values typed in from the paper's text)."""

import pytest

from readlit.errors import ConfigError
from readlit.paper_results import paper_table, paper_tables

TABLE1_COLUMNS = ["runtime", "fid", "fvd", "sync_c", "sync_d", "e_fid"]
TABLE1_METHODS = ["FantasyTalking", "Hallo", "EchoMimic", "Sonic", "AniPortrait", "Ditto", "AniTalker", "Ours"]


def test_table1_holds_every_method_and_column_of_both_datasets():
    table = paper_table(1)
    assert list(table["columns"]) == TABLE1_COLUMNS
    for dataset in ("hdtf", "mead"):
        assert list(table["rows"][dataset]) == TABLE1_METHODS
        assert all(list(row) == TABLE1_COLUMNS for row in table["rows"][dataset].values())


def test_table1_values_as_printed():
    hdtf, mead = paper_table(1)["rows"]["hdtf"], paper_table(1)["rows"]["mead"]
    assert hdtf["Ours"] == {"runtime": 4.421, "fid": 15.073, "fvd": 235.319, "sync_c": 8.658, "sync_d": 6.890,
                            "e_fid": 0.955}
    assert mead["Ours"] == {"runtime": 4.421, "fid": 46.444, "fvd": 224.738, "sync_c": 7.672, "sync_d": 8.080,
                            "e_fid": 1.043}
    assert hdtf["FantasyTalking"]["runtime"] == 896.089 and hdtf["AniTalker"]["fid"] == 39.155
    assert (hdtf["Sonic"]["runtime"], mead["Sonic"]["runtime"]) == (83.584, 83.854)  # printed so, twice
    assert mead["AniPortrait"]["sync_c"] == 1.189 and mead["Ditto"]["fid"] == 45.403


def test_tables_2_to_4_as_printed():
    assert paper_table(2)["rows"] == {"Full SpeechAE": {"fid": 15.073, "sync_c": 8.658, "sync_d": 6.890},
                                      "w/o Pre-training": {"fid": 15.305, "sync_c": 7.965, "sync_d": 7.361},
                                      "w/o SpeechAE": {"fid": 15.617, "sync_c": 2.086, "sync_d": 12.415}}
    assert paper_table(3)["rows"] == {121: {"duration": 4.840, "fid": 15.073, "sync_c": 8.658, "sync_d": 6.891},
                                      457: {"duration": 18.280, "fid": 15.241, "sync_c": 8.767, "sync_d": 6.813},
                                      1017: {"duration": 40.680, "fid": 15.195, "sync_c": 8.677, "sync_d": 6.824}}
    users = paper_table(4)["rows"]
    assert list(users) == ["Hallo", "EchoMimic", "Sonic", "AniPortrait", "AniTalker", "Ours", "GT"]
    assert users["Ours"] == {"lip_sync": 4.228, "realness": 3.875, "smooth": 3.947, "v_qual": 3.950}
    assert users["Sonic"]["v_qual"] == 3.994


def test_every_table_by_number():
    assert sorted(paper_tables()) == [1, 2, 3, 4]
    assert paper_tables()[2] == paper_table(2)


def test_an_unknown_table_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"no table 5 .*known: \[1, 2, 3, 4\]"):
        paper_table(5)
