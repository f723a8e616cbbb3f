"""Parts of the one catalogue (lambdas.common.messages merges them): backupctl's sentences, by area.

Each module holds ``ENTRIES``: key -> (English, German), keys ``cli.<area>.<name>``. Standard library only.
"""
