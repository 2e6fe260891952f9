"""Lightning components: the LightningModule and LightningDataModule every task builds."""
