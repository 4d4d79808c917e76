"""What the hooks need of Airflow: where each Airflow line keeps a name, the connection form,
reading a connection, the Test button, and files named by path or object-storage URL.

Below the hooks: nothing here imports a hook, an operator, a sensor or a trigger.
"""
