"""Cloud Run entry point of the dashboard: a service (``python main.py``,
from the Procfile), not a functions-framework function, because it serves
pages, static assets and websockets for as long as a browser stays open."""

from functions.dashboard.service import main

if __name__ == "__main__":
    main()
