"""The top layer: the local runner, the ``seqtutor`` command line and the KFP compiler."""
