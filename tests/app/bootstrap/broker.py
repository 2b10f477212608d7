# The seed guide's bootstrap/broker.py, unchanged.
from bootstrap.application import app

broker = app.make("broker")
