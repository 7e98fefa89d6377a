"""The LSTM regressor (plain nn.Module), its LightningModule wrapper, metrics, plots and prediction output."""
