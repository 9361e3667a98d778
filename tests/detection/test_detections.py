import numpy as np
import pytest

from detection.detections import Detections, box_iou, match_to_ground_truth


def _dets():
    return Detections(xyxy=[[0, 0, 10, 10], [20, 20, 40, 40], [0, 0, 5, 5]], confidence=[0.9, 0.3, 0.6],
                      class_id=[0, 1, 0], tracker_id=[7, 8, 9])


def test_indexing_returns_new_objects_and_keeps_arrays_aligned():
    d = _dets()
    high = d[d.confidence > 0.5]
    assert len(high) == 2 and high.tracker_id.tolist() == [7, 9] and len(d) == 3
    assert d[1].class_id.tolist() == [1]
    assert len(Detections.merge([d, Detections.empty(), high])) == 5


def test_bad_shapes_and_nan_are_refused():
    with pytest.raises(ValueError, match="disagree in length"):
        Detections([[0, 0, 1, 1]], [0.5, 0.6], [0])
    with pytest.raises(ValueError, match="non-finite"):
        Detections([[0, 0, np.nan, 1]], [0.5], [0])


def test_iou_values():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert np.allclose(iou, [[1.0, 1 / 3, 0.0]])


def test_matching_is_one_to_one_by_confidence_and_class_aware():
    truth = Detections([[0, 0, 10, 10], [20, 20, 40, 40]], [1, 1], [0, 0])
    pred = Detections([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 40, 40]], [0.5, 0.9, 0.8], [0, 0, 1])
    m = match_to_ground_truth(pred, truth)
    # the most confident of the two overlapping boxes takes the truth; the other is a duplicate FP;
    # the third has the wrong class
    assert m.tp.tolist() == [False, True, False] and m.false_positives == 2
    assert m.missed.tolist() == [False, True]


def test_yolo_labels_boxes_and_polygons_to_pixels():
    d = Detections.from_yolo_labels(["0 0.5 0.5 0.2 0.4", "3 0.1 0.1 0.3 0.1 0.2 0.3"], width=100, height=50)
    assert np.allclose(d.xyxy, [[40, 15, 60, 35], [10, 5, 30, 15]]) and d.class_id.tolist() == [0, 3]
