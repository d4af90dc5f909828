"""The layer below everything else: what curvature, posterior, information, certificates, experiments and the
command line all use, and which imports nothing of weightinfo outside this package.

* :mod:`.likelihoods`: the per-sample losses as likelihoods (cross-entropy, Bernoulli, unit-variance Gaussian),
  their output-space Fisher factors and target checks;
* :mod:`.batches`: ``(x, y)`` batches from a DataLoader or an ``(X, Y)`` tuple, with finiteness checks;
* :mod:`.mean_loss`: L_D = (1/N) Σ_i ℓ_i at given weights;
* :mod:`.distributed`: sums over the ranks of a ``torch.distributed`` process group (each rank passes its own
  shard, results are for the union, means over the global N), rank 0 as the only writer;
* :mod:`.checks`: argument checks that raise ``ValueError`` naming the argument;
* :mod:`.atomic`: write a file completely or not at all;
* :mod:`.machine`: what results record about the machine (CPU, cores, threads, versions, load);
* :mod:`.jsonable`: JSON-safe copies of results and metadata (``to_jsonable``);
* :mod:`.progress`: whether to draw progress bars (``progress_enabled``);
* :mod:`.table`: the per-layer row table base class.
"""
