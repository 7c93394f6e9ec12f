"""crism: CRISM mineral classification (bland-pixel ratioing, noise removal, HBM classifier, summary parameters)."""
