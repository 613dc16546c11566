"""The Trainers' `run_fn`s: fine-tuning (trainer), the not-fine-tuned model with its
calibration, and what they share: hyperparameters, inputs, optimizer, epoch backups,
progress."""
