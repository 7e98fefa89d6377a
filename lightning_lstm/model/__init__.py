"""The LSTM regressor (plain nn.Module), its LightningModule wrapper, metrics and weight-decay groups."""
