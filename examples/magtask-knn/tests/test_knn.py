import torch

from magtask import TrainData
from magtask.contracts import SideInputs
from magtask_knn import KNNClassifier


def test_votes_follow_the_nearest_neighbours():
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    y = torch.tensor([0, 0, 1, 1])
    head = KNNClassifier(n_classes=2, k=2)
    head.fit(TrainData(x=x, y=y, side=SideInputs("knn", (), {})))
    assert head(torch.tensor([[0.05, 0.0], [5.0, 5.1]])).argmax(1).tolist() == [0, 1]
