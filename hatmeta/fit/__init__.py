"""Effect sizes and model fits: ``escalc`` (effects), the vectorised tau2 and pooling core,
``rma`` and the common-effect methods (models), meta-regression and ``--by`` batches."""
