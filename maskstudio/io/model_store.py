"""Model manager: the registry of known models and the per-user folder of installed ones.

Qt-free. The CLI (``maskstudio models ...``) and the Models dialog are thin shells over
:class:`ModelStore`.

On-disk layout (the engine's :class:`maskstudio.engine.models.ModelSet` scans the same folders)
-------------------------------------------------------------------------------------------------
``<models_dir>`` is ``settings.models_dir``: platformdirs ``user_data_dir("MaskStudio")/models``,
overridden by the environment variable ``MASKSTUDIO_MODELS_DIR`` or the CLI flag ``--models-dir``.
Nothing is ever written inside the installed package.

::

    <models_dir>/
      <id>/                          one folder per installed registry entry
        <id>.safetensors             weights converted to our format (checkpoints.save_checkpoint)
        <id>.json                    {"arch", "config", "meta", ...} written beside it
        install.json                 install record: id, role, arch, source (URL or "import"),
                                     original file names + SHA-256 + sizes, whether a published
                                     checksum was verified, SHA-256 of <id>.safetensors, date (UTC)
      <boundary-set id>/             role "boundary-set": the direction files themselves
        <name>.npy | <name>.pt       (InterFaceGAN .npy, e4e .pt tensors), validated on install
        install.json
      .partial/<id>/<file>.part      downloads in progress (kept for HTTP Range resume)
      .staging-<id>-<random>/        a model being assembled; renamed into place with os.replace

An install is atomic: files are downloaded to ``.partial`` (same file system), checked
(checksum when the registry knows one, then keys/shapes against the registry entry's
architecture config), converted into a ``.staging-*`` folder and only then renamed to
``<id>/``. A failure removes the staging folder; nothing half-installed is left behind.

The registry itself is ``checkpoints/registry.json`` (shipped, readable JSON): every model
MaskStudio knows, with role, arch + architecture config, official source URLs, licence as
published by the authors, expected file layout, SHA-256 where known (``null`` otherwise).
Shipped starter weights (``checkpoints/dmn_starter.*``, ``checkpoints/face_parser.*``) are
entries with ``"shipped": true``; they are never copied into ``<models_dir>``.
"""
