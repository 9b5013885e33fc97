"""One function picks the tf.distribute strategy: TPU, all local GPUs, several hosts or CPU."""

from __future__ import annotations

import socket

import tensorflow as tf

from electra_tf.errors import StrategyError

STRATEGIES = ("auto", "tpu", "mirrored", "multi_worker", "one_device", "cpu")


def get_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the strategy for `name` (never None).

    auto: TPU when --tpu is given, else all local GPUs (Mirrored; one GPU: OneDevice), else CPU.
    tpu: Cloud TPU `tpu` (a TPU name, 'local', or grpc://host:port); tried only when asked.
    mirrored: all local GPUs (or the CPU). multi_worker: hosts from TF_CONFIG.
    one_device: the first GPU, else the CPU. cpu: the CPU.
    """
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if name == "tpu" or (name == "auto" and tpu):
        return _tpu_strategy(tpu)
    if tpu:
        raise StrategyError(f"--tpu={tpu} was given with --strategy={name}; use --strategy=tpu "
                            "or auto")
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "cpu" or (not gpus and name in ("auto", "one_device")):
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "one_device" or len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.MirroredStrategy()


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    if not tpu:
        raise StrategyError("--strategy=tpu needs --tpu: the TPU's name (Cloud TPU VM: 'local'),"
                            " or its grpc://host:port address")
    if tpu.startswith("grpc://"):  # a dead address would hang the TPU client: check first
        host, _, port = tpu[len("grpc://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as e:
            raise StrategyError(f"--tpu={tpu}: no TPU server answers there ({e})") from None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise StrategyError(f"--tpu={tpu}: cannot reach the TPU ({str(e).splitlines()[0]}); "
                            "pass its name as shown by `gcloud compute tpus list`, or 'local' "
                            "on a TPU VM") from None
    return tf.distribute.TPUStrategy(resolver)
