# The images the KFP components run in (seqtutor compile --image ... --gpu-image ...).
#   scripts/build_image.sh --variant cpu|gpu --tag TAG   (starts dockerd, makes a base if needed)
#   docker build --build-arg VARIANT=gpu -t REGION-docker.pkg.dev/PROJECT/REPO/seqtutor-gpu:0.1.0 .
# VARIANT=cpu (prepare_data, evaluate): TensorFlow alone, no CUDA wheels.
# VARIANT=gpu (pretrain, tune): TensorFlow's CUDA libraries through its `and-cuda` extra; on a
# node without a GPU TensorFlow falls back to the CPU.
# BASE: any image with Python 3.11 whose `pip` is on PATH (scripts/build_image.sh makes one from
# Debian's packages when python:3.11-slim cannot be pulled).
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_USE_LEGACY_KERAS=1
# The dependencies first, in a layer of their own (setup.py's pins): a change of code rebuilds
# only the last layer. .build-ca.crt: a CA bundle for pip behind a TLS-intercepting proxy, put
# there by scripts/build_image.sh when the host's pip names one (the glob lets a build go
# without it).
COPY setup.py scripts/requirements.py .build-ca.cr[t] /tmp/build/
RUN set -e; \
    case "$VARIANT" in \
      cpu) tensorflow="tensorflow==2.21.0" ;; \
      gpu) tensorflow="tensorflow[and-cuda]==2.21.0" ;; \
      *) echo "VARIANT must be cpu or gpu, not '$VARIANT'" >&2; exit 1 ;; \
    esac; \
    if [ -f /tmp/build/.build-ca.crt ]; then export PIP_CERT=/tmp/build/.build-ca.crt; fi; \
    python /tmp/build/requirements.py /tmp/build/setup.py > /tmp/build/requirements.txt; \
    pip install -r /tmp/build/requirements.txt "$tensorflow" "setuptools>=69" wheel; \
    pip install --no-deps molsets==0.3.1; \
    rm -rf /tmp/build
# The code, installed (not editable) from a folder that is then removed: a `seqtutor/` source
# folder in a task's working directory would shadow the installed package.
WORKDIR /tmp/src
COPY setup.py pyproject.toml README.md ./
COPY seqtutor ./seqtutor
COPY pipeline ./pipeline
COPY components ./components
COPY data_prep ./data_prep
COPY domains ./domains
COPY configs ./configs
# No build isolation: setuptools and wheel are in the layer above (no index needed here).
RUN pip install --no-deps --no-build-isolation . && cd / && rm -rf /tmp/src \
    && python -c "import seqtutor.pipeline.kfp_steps" && seqtutor --help >/dev/null
WORKDIR /workspace
ENV SEQTUTOR_IMAGE_VARIANT=${VARIANT}
# No ENTRYPOINT: KFP starts each task with its own command (`sh -c ...`). Locally:
#   docker run IMAGE seqtutor run melody_smoke
CMD ["seqtutor", "--help"]
