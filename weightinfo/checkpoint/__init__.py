"""Checkpoints of trained reference networks, and cached training (``train_or_load``).

A checkpoint is two files written atomically (temporary file + ``os.replace``):

* ``PATH`` (e.g. ``run.pt``): ``torch.save`` of ``{"state_dict", "init_state_dict", "meta"}``;
  tensors on CPU. The initial weights are kept because later computations use them as the mean
  of a prior on the weights.
* ``PATH`` with suffix ``.json`` (``run.json``): the metadata ``meta`` as readable JSON:
  ``architecture`` (``name``, ``kwargs``, ``input_shape``, ``n_classes``: the arguments of
  :func:`weightinfo.models.build_model`), ``dataset``, ``train_config``, ``seed``, ``metrics``,
  ``n_parameters``, ``weightinfo_version``, ``torch_version``, ``created`` (UTC, ISO 8601) and an
  ``id`` shared with the copy embedded in ``PATH``.

:func:`train_checkpoint` trains a :class:`TrainSpec` (dataset, model, hyper-parameters, seeds,
label noise) from scratch and saves the result; ``weightinfo train`` uses it directly and
:func:`train_or_load` (:mod:`.cache`) caches it as
``<cache>/<config hash>.pt``, where ``<cache>`` is the ``cache_dir`` argument, else
``$WEIGHTINFO_CACHE``, else ``$XDG_CACHE_HOME/weightinfo/checkpoints`` (default
``~/.cache/weightinfo/checkpoints``). A later call with the same configuration loads that file
instead of training.
"""

from .._base.jsonable import to_jsonable
from .cache import CACHE_ENV_VAR, config_hash, default_cache_dir, train_or_load
from .files import FORMAT_VERSION, Checkpoint, load_checkpoint, metadata_path, save_checkpoint
from .spec import TrainedRun, TrainSpec, load_training_data, train_checkpoint

__all__ = [
    "CACHE_ENV_VAR",
    "FORMAT_VERSION",
    "Checkpoint",
    "TrainSpec",
    "TrainedRun",
    "config_hash",
    "default_cache_dir",
    "load_checkpoint",
    "load_training_data",
    "metadata_path",
    "save_checkpoint",
    "to_jsonable",
    "train_checkpoint",
    "train_or_load",
]
