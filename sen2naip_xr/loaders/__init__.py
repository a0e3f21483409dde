"""Data loaders over a SEN2NAIP store. ``sen2naip_xr.loaders.torch`` (PyTorch) is imported explicitly, so
``import sen2naip_xr`` never imports torch."""
