"""`make run`'s warm start: stages run in processes forked from one server that has imported
torch and MLflow once (server.py); stage scripts reach it through client.py."""
