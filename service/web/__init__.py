"""The web dashboard's assets (``static/``): pages served by the API process
(``service/api/routes/dashboard.py``). Each page is a static shell whose
script reads the same ``/v1`` aggregate endpoints as API users, with the same API key (so the
caller's role and data scope apply unchanged). Chart code comes from the plotly.js bundle that
the installed ``plotly`` package ships; nothing is fetched from a CDN."""
