"""spy_backend: the FastAPI backend of the SPY options platform.

The detector posts anomalies, market state, GEX, flow and signals to `/api/v1/ingest`;
the backend stores them in Azure Table Storage (Azurite locally) and pushes every new
record to realtime clients over Azure Web PubSub or the local hub that speaks the same
`json.webpubsub.azure.v1` subprotocol. Entry points: `spy_backend.app.create_app`,
`python -m spy_backend`, and `spy_dev.devserver` for the demo and tests.
"""

__version__ = "0.1.0"
