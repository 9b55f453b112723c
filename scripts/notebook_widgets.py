"""Widget state in the notebooks (see CONTRIBUTING.md, convention 9).

    python scripts/notebook_widgets.py strip notebooks/*.ipynb   # before committing: no widget state
    python scripts/notebook_widgets.py lab-settings              # JupyterLab saves a valid state locally
"""

import sys

from fer_utils.explorer import main

if __name__ == "__main__":
    sys.exit(main())
