"""The run report's and model card's templates, and `init`'s scaffold (`init/`): shipped with the product."""
