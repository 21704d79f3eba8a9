"""Flower's FedAvg on the same split and model as `greenmesh bench fl`.

`greenmesh bench fl --flower PYTHON` writes each node's rows (already
standardised) and the test rows as CSV files into a folder and runs this
script with that Python (one with `flwr[simulation]` installed; it is not
part of CI). The clients train the same softmax regression with the same
local DP-SGD as greenmesh-fl (Poisson batches at rate q, per-row clipping,
Gaussian noise sigma * clip on the sum, the step divided by q * n); Flower's
simulation engine runs them and its FedAvg strategy averages them by rows.
Prints one JSON line: test accuracy, wall seconds, Flower's version.
"""

import argparse
import glob
import json
import os
import time

import numpy as np


def load(path):
    data = np.loadtxt(path, delimiter=",", ndmin=2)
    return data[:, :-1], data[:, -1].astype(int)


def forward(params, x, classes):
    features = x.shape[1]
    w = params[: classes * features].reshape(classes, features)
    b = params[classes * features :]
    logits = x @ w.T + b
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def local_train(params, x, y, classes, args, rng):
    p = params.copy()
    n, features = x.shape
    expected = max(args.q * n, 1.0)
    for _ in range(args.steps):
        mask = rng.random(n) < args.q if args.q < 1.0 else np.ones(n, dtype=bool)
        xb, yb = x[mask], y[mask]
        probs = forward(p, xb, classes)
        dlogit = probs
        dlogit[np.arange(len(yb)), yb] -= 1.0
        # per-row gradients: weights (classes x features) then biases
        grads = np.concatenate(
            [(dlogit[:, :, None] * xb[:, None, :]).reshape(len(yb), -1), dlogit], axis=1
        )
        if np.isfinite(args.clip):
            norms = np.linalg.norm(grads, axis=1)
            grads *= np.minimum(1.0, args.clip / np.maximum(norms, 1e-300))[:, None]
        total = grads.sum(axis=0)
        if args.sigma > 0:
            total += rng.normal(0.0, args.sigma * args.clip, size=total.shape)
        p -= args.lr * total / expected
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--q", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--clip", type=float, default=float("inf"))
    ap.add_argument("--sigma", type=float, default=0.0)
    ap.add_argument("--classes", type=int, default=2)
    args = ap.parse_args()

    import flwr
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    parts = [load(p) for p in sorted(glob.glob(os.path.join(args.folder, "node-*.csv")))]
    test_x, test_y = load(os.path.join(args.folder, "test.csv"))
    features = test_x.shape[1]
    start = np.zeros(args.classes * features + args.classes)
    result = {}

    class Client(NumPyClient):
        def __init__(self, pid):
            self.x, self.y = parts[pid]
            self.rng = np.random.default_rng()

        def fit(self, parameters, config):
            p = local_train(parameters[0], self.x, self.y, args.classes, args, self.rng)
            return [p], len(self.y), {}

    def client_fn(context: Context):
        return Client(int(context.node_config["partition-id"])).to_client()

    class Keeping(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            params, metrics = super().aggregate_fit(server_round, results, failures)
            if params is not None:
                result["params"] = parameters_to_ndarrays(params)[0]
            return params, metrics

    def server_fn(context: Context):
        strategy = Keeping(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=len(parts),
            min_available_clients=len(parts),
            initial_parameters=ndarrays_to_parameters([start]),
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=args.rounds))

    began = time.time()
    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=client_fn),
        num_supernodes=len(parts),
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
        verbose_logging=False,
    )
    seconds = time.time() - began
    predicted = forward(result["params"], test_x, args.classes).argmax(axis=1)
    print(json.dumps({"accuracy": float((predicted == test_y).mean()), "seconds": seconds,
                      "flwr": flwr.__version__}))


if __name__ == "__main__":
    main()
