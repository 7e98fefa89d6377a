"""``python -m lightning_lstm doctor``: find why the loss spikes on your data, try the remedies, prove the best one."""

from lightning_lstm.doctor.options import DoctorOptions
from lightning_lstm.doctor.run import run_doctor

__all__ = ["DoctorOptions", "run_doctor"]
