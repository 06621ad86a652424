# The image every KFP component of the pipeline runs in (seqtutor compile --image ...).
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/seqtutor:0.1.0 .
# TensorFlow's CUDA libraries come with the `and-cuda` extra, so the tune component uses the GPU
# that the pipeline asks for; on CPU-only nodes TensorFlow falls back to the CPU.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 TF_USE_LEGACY_KERAS=1
WORKDIR /opt/seqtutor
COPY setup.py pyproject.toml README.md ./
COPY seqtutor ./seqtutor
COPY pipeline ./pipeline
COPY components ./components
COPY data_prep ./data_prep
COPY domains ./domains
COPY configs ./configs
RUN pip install . "tensorflow[and-cuda]==2.21.0" && pip install --no-deps molsets==0.3.1
# No ENTRYPOINT: KFP starts each task with its own command (`sh -c ...`). Locally:
#   docker run IMAGE seqtutor run melody_smoke
CMD ["seqtutor", "--help"]
