"""Federated learning with a participation budget k (issue 18); ROS-free, may import `marl`, never `ros`.

- `data`: scikit-learn's digits, partitioned non-IID over n clients; softmax regression in numpy.
- `clients`: client heterogeneity (availability chains, device speed) and the reported client state.
- `game`: the participation game (only the k polled clients can contribute): its state names, the
  records of a run, identification of its kernels, and its reduction to a `TabularGame` per k.
- `flower_app`: the Flower ClientApp / ServerApp, the learned-policy Strategy and the FedAvg baseline
  (imports `flwr`: a separate venv, see bench/README.md).
"""
