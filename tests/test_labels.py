import numpy as np

from maskstudio import labels


def test_table_matches_official_order_and_palette():
    assert labels.NUM_CLASSES == 19
    assert labels.NAMES[:6] == ("background", "skin", "nose", "eye_g", "l_eye", "r_eye")
    assert labels.NAMES[13] == "hair" and labels.NAMES[17] == "neck" and labels.NAMES[18] == "cloth"
    assert labels.PALETTE[1].tolist() == [204, 0, 0]
    assert labels.PALETTE[18].tolist() == [0, 204, 0]
    # palette colours are distinct, shortcuts are unique
    assert len({tuple(c) for c in labels.PALETTE.tolist()}) == 19
    assert len(set(labels.SHORTCUTS)) == 19


def test_mirror_pairs_and_flip():
    assert [labels.mirror_class(i) for i in (4, 5, 6, 7, 8, 9, 1, 13)] == [5, 4, 7, 6, 9, 8, 1, 13]
    m = np.zeros((2, 4), np.uint8)
    m[0, 0] = 4  # l_eye at left column
    f = labels.flip_labels(m)
    assert f[0, 3] == 5 and f[0, 0] == 0
    assert labels.index_of("l_lip") == 12
    assert labels.colorize(m)[0, 0].tolist() == [51, 51, 255]
