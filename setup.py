"""Sequence Tutor: MLE-pretrained LSTMs tuned with KL-control RL (Jaques et al., ICML 2017)."""

from setuptools import find_packages, setup

# The top-level folders stay at the repository root; installed, they are subpackages of the
# one import package ``seqtutor`` (whose own modules are in ``seqtutor/``), so nothing generic
# such as ``pipeline`` lands in site-packages.
ROOT_FOLDERS = ("pipeline", "components", "data_prep", "domains")
# Root folders of data alone, installed the same way: configs/*.yaml are the built-in configs
# (seqtutor/configs/ installed; seqtutor.config.builtin_configs()).
DATA_FOLDERS = {"configs": ["*.yaml"]}
PACKAGE_DIR = {"seqtutor": "seqtutor",
               **{f"seqtutor.{folder}": folder for folder in (*ROOT_FOLDERS, *DATA_FOLDERS)}}
PACKAGES = ["seqtutor", *(f"seqtutor.{name}" for name in find_packages("seqtutor"))] + [
    f"seqtutor.{name}" for folder in ROOT_FOLDERS
    for name in [folder, *(f"{folder}.{sub}" for sub in find_packages(folder))]] + [
    f"seqtutor.{folder}" for folder in DATA_FOLDERS]
PACKAGE_DATA = {f"seqtutor.{folder}": patterns for folder, patterns in DATA_FOLDERS.items()}

# Versions that install together on Python 3.11 (tf-agents 0.18 needs Keras 2: tf-keras).
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf-keras==2.21.0",
    "tf-agents==0.18.0",
    "tensorflow-probability==0.22.1",
    "tensorflow-datasets==4.9.10",
    "tensorboard==2.21.0",
    "apache-beam[tfrecord]==2.77.0",
    "note-seq==0.0.5",
    "pretty_midi==0.2.11.post0",
    "music21==10.5.1",
    "rdkit==2026.9.1",
    "kfp==2.17.3",
    "numpy==2.4.6",
    "protobuf==6.33.6",
    "pydantic==2.14.4",
    "PyYAML==6.0.4",
    "matplotlib==3.11.2",
]

setup(
    name="seqtutor",
    version="0.1.0",
    description=__doc__,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    package_dir=PACKAGE_DIR,
    packages=PACKAGES,
    package_data=PACKAGE_DATA,
    install_requires=INSTALL_REQUIRES,
    # docker: kfp.local's DockerRunner, for the opt-in image test (SEQTUTOR_IMAGE_TEST=1).
    # gcp: Beam's Dataflow runner and its gs:// file system (prepare_data inputs on GCS).
    extras_require={"test": ["pytest==9.2.0", "pytest-xdist==3.8.0", "docker==7.2.0"],
                    "gcp": ["apache-beam[gcp,tfrecord]==2.77.0"]},
    entry_points={"console_scripts": ["seqtutor=seqtutor.pipeline.cli:main"]},
)
